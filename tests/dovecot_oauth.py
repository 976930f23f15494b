"""A throwaway Dovecot that also takes OAuth2 logins (SASL XOAUTH2 and OAUTHBEARER).

It is tests/dovecot.py's Dovecot with Dovecot's oauth2 passdb added for those two mechanisms:
Dovecot asks ``introspection_url`` (``introspection_mode = auth``: a GET with the client's
token as ``Authorization: Bearer``) and lets the login in when the answer says
``"active": true`` and names the same ``username``.  The passwd-file passdb still serves PLAIN
and LOGIN, so ``add_user()`` and the password helpers of other tests work unchanged.
"""

from __future__ import annotations

from pathlib import Path

from tests.dovecot import Dovecot

_OAUTH2_EXT = """\
introspection_mode = auth
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 5000
"""

_PASSDB = """
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {ext}
}}
"""


class OAuthDovecot(Dovecot):
    def __init__(self, root: Path, introspection_url: str) -> None:
        super().__init__(root)
        self.introspection_url = introspection_url

    def _prepare(self) -> None:
        super()._prepare()
        ext = self.root / "etc/dovecot-oauth2.conf.ext"
        ext.write_text(_OAUTH2_EXT.format(url=self.introspection_url))
        text = self.conf.read_text()
        edits = {"auth_mechanisms = plain login\n": "auth_mechanisms = plain login xoauth2 oauthbearer\n",
                 "passdb {\ndriver = passwd-file\n": "passdb {\ndriver = passwd-file\nmechanisms = plain login\n"}
        for old, new in edits.items():
            if old not in text:
                raise RuntimeError(f"tests/dovecot.py's config changed: {old!r} is gone")
            text = text.replace(old, new)
        self.conf.write_text(text + _PASSDB.format(ext=ext))
