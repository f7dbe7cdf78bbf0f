"""``python -m parley.contracts``: write the JSON Schemas and AsyncAPI document."""

from parley.contracts.export import SCHEMA_DIR
from parley.contracts.export import write

if __name__ == "__main__":
    paths = write()
    print(f"wrote {len(paths)} documents under {SCHEMA_DIR}")
