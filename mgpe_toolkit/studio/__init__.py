"""The studio (`mgpe studio`): a local web page to paint a face's mask and edit, swap and transfer with Pipeline.

`session.Studio` does the work without the web; `server.create_app` puts JSON and PNG endpoints and the page's
assets (static/) over it. The web parts need the `studio` extra: pip install -e ".[studio]".
"""
