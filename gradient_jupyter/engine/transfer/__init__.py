"""save and load: folders to verified dataset versions and back, in parallel. One module a job, as fsspec's
`put` (pair paths, batch) sits over a per-file step over a store call (docs/architecture.md):

- save.py: save (a folder to a committed version: what to send, resume, dedupe), preview_save (--dry-run)
- local.py: the folder a save versions: ignore rules, links, SHA-256s through the hash cache
- load.py: load and plan_load (a version to a folder, decided before anything is written)
- destination.py: where a load writes (hostile paths, same names, local changes, DEST/.gradient/loaded.json)
- fetch.py: the bytes of a load, from this machine or the store (large files as parallel ranges), verified
- progress.py: TransferProgress, the progress a transfer reports (ProgressEvent, engine/models.py)
"""

from .destination import folder_folds, read_record, same_name_groups, write_record
from .load import LoadPlan, load, plan_load
from .local import ignore_spec, save_folder, scan_folder
from .progress import ProgressCallback, Stopped, TransferProgress
from .save import plan_uploads, preview_save, save

__all__ = [
    "LoadPlan",
    "ProgressCallback",
    "Stopped",
    "TransferProgress",
    "folder_folds",
    "ignore_spec",
    "load",
    "plan_load",
    "plan_uploads",
    "preview_save",
    "read_record",
    "same_name_groups",
    "save",
    "save_folder",
    "scan_folder",
    "write_record",
]
