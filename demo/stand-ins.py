#!/usr/bin/env python3
"""Local stand-ins of api.github.com and a Discord webhook for the bundled demo.

demo/run.sh starts this on 127.0.0.1 so that github-release and discord-notify run
offline. It answers like the real APIs for the two calls the skills make and prints
one line per request, with the credential the host injected (a DEMO-ONLY value from
demo/http-secrets.yaml), so the demo shows what arrived at the API while the skill's
own output never holds it:

- POST /repos/OWNER/REPO/releases: 401 without Authorization, else 201 and the release;
- POST /api/webhooks/ID/TOKEN: 204;
- anything else: 404.

Usage: stand-ins.py PORT (stops on SIGTERM or Ctrl-C).
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StandIn(BaseHTTPRequestHandler):
    def _answer(self, status, body=None):
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        try:
            sent = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            sent = None
        path = self.path.split("?", 1)[0]
        if path.startswith("/repos/") and path.endswith("/releases"):
            auth = self.headers.get("authorization")
            print(f"  [api.github.com stand-in] POST {path}  authorization: {auth}", flush=True)
            if not auth:
                return self._answer(401, {"message": "Requires authentication"})
            repo = path[len("/repos/"):-len("/releases")]
            tag = (sent or {}).get("tag_name", "")
            return self._answer(201, {
                "id": 1,
                "tag_name": tag,
                "name": (sent or {}).get("name"),
                "html_url": f"https://github.com/{repo}/releases/tag/{tag}",
            })
        if path.startswith("/api/webhooks/"):
            content = (sent or {}).get("content")
            print(f"  [discord stand-in] POST {path}  content: {content!r}", flush=True)
            return self._answer(204)
        self._answer(404, {"message": "Not Found"})

    def log_message(self, *args):
        pass


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: stand-ins.py PORT")
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), StandIn)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
