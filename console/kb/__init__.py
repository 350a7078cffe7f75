"""The knowledge-base console's JSON API, by feature: FAQs, history, go live, the unanswered
queue, content health, import/export (``routes.py`` lists every route).

The console's own pages use exactly this API (kb.js), and agencies use it to sync their CMS;
/api/openapi.json documents every route. Editors and admins change content, viewers read,
agents get 403. Content validation is the store's (``FaqInput``); these modules only translate
between HTTP and the store.

Any change that touches published content is followed by a publish (index rebuild + atomic
swap) before the response is sent, so a 200 means "live"; the response's ``index`` says which
bundle version went live or why it did not.
"""

from console.kb.routes import setup
from console.kb.runtime import KbRuntime

__all__ = ["KbRuntime", "setup"]
