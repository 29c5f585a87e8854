"""What anyone may read about the co-op, without an account: the public page's contents.

Platform-free and HTTP-free like every service: `coopbot/web/public.py` only
asks these modules for a language's page and writes it as HTML.
"""
