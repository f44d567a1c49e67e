"""What several test modules share (import from here, never from another test module; fixtures stay in
tests/conftest.py):

- files.py: make_folder, read_folder, sha
- processes.py: SECRET, cli (the console script in a subprocess), free_port
- providers.py: a provider or store on the session's SeaweedFS
- seaweed.py: the SeaweedFS server (also started by benchmarks/)
- faultproxy.py, countingproxy.py: proxies that break or count requests between a client and a store
- server_api.py: the REST API of a test's Jupyter server, checked against openapi.json
- hub.py: a real JupyterHub with users, their servers and tokens (tests/test_team_hub.py)
- dependencies.py: third-party imports (ast) against declared requirements (also a script: scripts/smoke.sh)
- widgets.py: ipywidgets driven as a browser would (typed), and what they hold (widget_tree, state_text)
"""

from .files import make_folder, read_folder, sha
from .processes import SECRET, cli, free_port

__all__ = ["SECRET", "cli", "free_port", "make_folder", "read_folder", "sha"]
