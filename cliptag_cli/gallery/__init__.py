"""``cliptag gallery``: a web gallery of a cliptag stack, served on 127.0.0.1 by a local process.

The browser talks only to this process. It signs each API call with the user's credentials
(SigV4, ``upstream``), reads the pictures from S3 and sends resized renditions (``renditions``)
or streams an original, typed by its bytes (``originals``), and serves the pages from
``static/`` (vanilla HTML, CSS and JS modules: no build step, no CDN). How it is run and why it
is built this way: docs/gallery.md.
"""
