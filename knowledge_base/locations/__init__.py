"""The agency's locations (airports, offices) with the names citizens use for them.

A conversation is about a location: the page that embeds the widget says so
(``data-location``), a channel's configuration maps the number or page a citizen wrote to
(``ASKAGENCY_CHANNEL_LOCATIONS``), or the citizen names it ("at O'Hare", "JFK terminal 4").
Staff keep the list in the console; analytics reports every metric by location.
"""
