"""`py-echo`: a test skill that leaks on purpose. It prints the token to stdout and stderr
and returns it, so the tests can check that the host redacts what a Python skill sends back."""

import sys

from agentsec_skill import get_secret, skill


@skill
def run(input: str) -> str:
    token = get_secret("communication.github.token")
    print("token:", token.expose())
    print("token:", token.expose(), file=sys.stderr)
    return token.expose()
