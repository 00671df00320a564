# With the repo root as the working directory, `import gateway` would find this folder (no
# __init__.py: a namespace package) before the editable install's finder gets a say; putting
# the folder on sys.path makes `gateway` the real package, gateway/gateway.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
