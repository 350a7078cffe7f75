"""Photos and files in conversations (issue 21, item 1): a traveller's "can I bring this?" photo
reaches the person in the inbox, and the person can send an image or a PDF back.

One store for every way a file arrives, in the shared database (so every replica of the console
and the action server sees it, and privacy export/delete/retention cover it like the tickets):

* ``attachments.sanitize``: what a file really is, decided by its content, never by its name or
  declared type. Images are decoded and re-encoded (EXIF and GPS gone, orientation applied, a
  polyglot's hidden payload gone), PDFs are checked and kept as they are; anything else, an
  oversized file or a decompression bomb is refused with a reason the citizen can be told.
* ``attachments.models``: the ``attachment`` table (bytes and a thumbnail in the row).
* ``attachments.store``: save, look up by id, check ownership by a conversation, link to a
  ticket message, export and delete for privacy.
* ``attachments.links``: signed, expiring links for the citizen's side (platforms fetch an
  agent's image by URL); staff see files only through the logged-in console.

Files reach the store through the console (the widget's and the agents' uploads) or the action
server's ``POST /attachments`` (files the Rasa channels fetched from a messaging platform: Rasa's
environment has neither Pillow nor these models). ``askagency privacy`` exports (metadata and
SHA-256, no bytes), deletes and purges them with the rest of a conversation.

Ids are 128 random bits (``secrets.token_hex(16)``), never sequential; knowing an id is still
not enough: the console serves files to logged-in staff only, citizens only through a signed
link, and the bot uses a citizen's id only when the file belongs to that conversation.
"""
