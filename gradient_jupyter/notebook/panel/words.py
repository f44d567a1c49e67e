"""Every word the panel shows, in one place (the engine's own messages are shown as the engine words them)."""

from __future__ import annotations

TITLE = "Gradient storage"
TEAM = "team folder {team}"
TEAM_HINT = (
    "Everything this installation writes in a bucket lives under the folder {team}/ (its team ID). "
    "Teammates who share a bucket and want to see each other's datasets use the same team ID."
)
TABS = ("Storage providers", "Datasets")
REFRESH = "Refresh"
REFRESHING = "Reading providers and datasets..."
READING_USAGE = "Reading how much each bucket holds..."
REFRESHED = "Up to date"
BUSY_ELSEWHERE = "Still working on the last request of this control..."
UNEXPECTED = "Unexpected error ({kind}): {error}"
WARNING = "Warning: {warning}"
# The engine's refusals whose own words name the console's way on (a flag, a command), in the panel's words:
# by the refusal's reason, formatted with what the control knows ({message}: the engine's words).
REFUSALS = {
    "provider-in-use": 'Datasets use storage provider {name}: delete them first, or press "Delete anyway" '
    "below to delete the provider anyway (their data stays in the bucket).",
    "provider-unchecked": "Could not check whether datasets use storage provider {name} ({cause}). Fix the "
    'provider and try again, or press "Delete anyway" below (any data stays in the bucket).',
    "default-provider": '{name} is the team default: choose another provider and press "Make team default" first.',
    "no-path": "Give the folder to save in the Folder field: an empty one would save the whole working folder.",
    "tag-in-use": 'Tag {tag} already names {other}: press "Move the tag and save" below to move it, or choose '
    "another tag. Nothing was saved.",
    "wrong-provider": "Dataset {name} lives in another storage provider: choose \"the dataset's own, or the "
    'team default" as its Provider, or another dataset name.',
    "unknown-parent": "The version before {version} was deleted: choose a version to compare with.",
    "local-changes": "Nothing was written: {dest} holds local changes that loading {ref} would replace. "
    'Press "Overwrite them and load" below to replace them, or load into another folder.',
}
DELETE_ONE = 'choose one and press "Delete provider"'

# -- providers ---------------------------------------------------------------------------------------------------
UNREACHABLE = "{name} cannot be reached: {error} Choose it and press Check setup to see what is wrong."
QUOTA = "Managed quota"
QUOTA_USED = "{used} used of {quota} ({percent:.1f}%)"
PROVIDER = "Provider"
PROVIDER_OPTION = "{name}"
TEAM_OPTION = "{name} (the team's)"
TEAM_PROVIDER = (
    "{name} is the team's: an administrator sets it in the team file {file}, so it cannot be edited or deleted here."
)
TEAM_READ_ONLY = " It is read-only: its datasets can be read, loaded and mounted, not saved into."
ADD_HEADING = "Add an S3-compatible storage provider"
EDIT_HEADING = "Edit storage provider {name}"
FIELDS = {
    "name": ("Name", "e.g. my-minio"),
    "bucket": ("Bucket", "e.g. my-bucket"),
    "endpoint": ("Endpoint", "empty for AWS, e.g. http://127.0.0.1:9000"),
    "region": ("Region", "e.g. us-east-1"),
    "accessKey": ("Access key", "empty: boto3's credential chain"),
    "secretAccessKey": ("Secret key", "kept in the kernel's memory only, never in the notebook"),
    "profile": ("AWS profile", "instead of keys: a profile of ~/.aws/config"),
    "signatureVersion": ("Signature", "empty: v4 (v2 for old stores)"),
}
# Engine words that name a provider setting by its config name ("check secretAccessKey") name its field instead.
CONFIG_NAMES = ("secretAccessKey", "signatureVersion", "accessKey")
EDIT_PLACEHOLDERS = {"secretAccessKey": "empty: keep the current secret"}
SECRET_HELD = "secret held in the kernel's memory (not in the notebook); type again to replace it"
ADD = "Add"
ADD_AND_CHECK = "Add and check"
SAVE_EDIT = "Save changes"
CANCEL = "Cancel"
EDIT = "Edit"
DELETE_PROVIDER = "Delete provider"
MAKE_DEFAULT = "Make team default"
MAKE_DEFAULT_HINT = "New datasets go to the team default when no provider is chosen"
MAKING_DEFAULT = "Making {name} the team default..."
MADE_DEFAULT = "{name} is now the team default: new datasets go there when no provider is chosen."
ADDING = "Adding storage provider {name}..."
ADD_CHECKING = "Adding storage provider {name} and checking its bucket..."
ADDED = "Created storage provider {name} ({id})."
NOT_CHECKED = (
    'nothing was checked: whether its bucket answers is unknown. Choose it and press "Check setup", '
    'or add with "Add and check".'
)
ADDED_CHECKED = "Created storage provider {name} ({id}); its bucket answers as it should."
NOT_ADDED_ID = "new"
# Why "Add and check" added nothing, by the reason of the first essential check that failed.
AGAIN = " See the report below, correct the form and try again (type the secret again)."
NOT_KEPT = {
    "unreachable": "Not added: could not connect to {endpoint}: check the Endpoint and that the store runs." + AGAIN,
    "dns": "Not added: could not connect to {endpoint}: its host name is not known." + AGAIN,
    "timeout": "Not added: could not connect to {endpoint}: it did not answer in time." + AGAIN,
    "not-s3": "Not added: {endpoint} does not answer as an S3 store: give its base URL as the Endpoint." + AGAIN,
    "invalid-credentials": "Not added: {endpoint} does not know the Access key." + AGAIN,
    "signature-mismatch": "Not added: {endpoint} refused the Secret key (or the Signature)." + AGAIN,
    "no-credentials": "Not added: no credentials: give an Access key and its Secret key, or an AWS profile." + AGAIN,
    "access-denied": "Not added: the credentials may not use bucket {bucket} ({check} denied)." + AGAIN,
    "no-such-bucket": "Not added: there is no bucket {bucket} at {endpoint}." + AGAIN,
    "wrong-region": "Not added: bucket {bucket} is in another region: correct the Region." + AGAIN,
    "other": "Not added: the {check} check of the bucket failed." + AGAIN,
}
SAVING_EDIT = "Saving storage provider {name}..."
EDITED = "Updated storage provider {name}."
FIELD_WRONG = "Check this field"
CONFIRM_DELETE_PROVIDER = (
    "Delete storage provider {name}? Its bucket and the data in it are not touched; datasets "
    "in it are no longer listed here."
)
CONFIRM_FORCE_DELETE_PROVIDER = "Delete {name} anyway? Its datasets stay in the bucket but are no longer listed here."
FORCE_DELETE_PROVIDER = "Delete anyway"
DELETING_PROVIDER = "Deleting storage provider {name}..."
DELETED_PROVIDER = "Deleted storage provider {name}."
ORIGINS = ("Origins", "comma-separated (default: this machine's Jupyter servers)")
CHECK = "Check setup"
APPLY_CORS = "Apply CORS fix"
CHECKING = "Checking the bucket's setup of {name}..."
APPLYING_CORS = "Applying the CORS rules to {name}'s bucket..."
CHECKED = "Checked {name}: {summary}"
CHECK_OK = "no check failed"
CHECK_FAILED = "{count} check(s) failed, see the fixes below"

# -- datasets ----------------------------------------------------------------------------------------------------
NO_DATASETS = "(none yet: save a folder below)"
DATASET = "Dataset"
DESCRIPTION = ("Description", "what this dataset holds")
SAVE_DESCRIPTION = "Save description"
SAVING_DESCRIPTION = "Saving the description of {name}..."
SAVED_DESCRIPTION = "Saved the description of {name}."
DESCRIPTION_UNCHANGED = "The description is as saved."
DELETE_DATASET = "Delete dataset"
CONFIRM_DELETE_DATASET = "Delete dataset {name} with all its {count} version(s) and their files? This cannot be undone."
DELETING_DATASET = "Deleting dataset {name}..."
DELETED_DATASET = "Deleted dataset {name}."
VERSION = "Version"
VERSION_OPTION = "{version}{tags} · {when}{message}"
TAGS = " ({tags})"
MESSAGE = " · {message}"
FILE_OPTION = "{name}   ·   {size}"
PREVIEW = "<b>{path}</b> · {size}<pre>{text}</pre>"
PROGRESS = "{done}/{total} files, {bytes_done} of {bytes_total}"
NO_VERSION = "Choose a dataset with a committed version first."
FILES_HEADING = "Files of the version"
FOLDER_UP = ".. (up)"
FILES_IN = "{ref} · in /{folder}"
READING_FILES = "Reading the files of {ref}..."
PREVIEW_LIMIT = 64 * 1024
PREVIEWING = "Reading {path}..."
PREVIEW_BINARY = "{path}: {size}, not text: load the version to open it."
PREVIEW_LARGE = "{path}: {size}, too large to preview here: load the version to open it."
TAGS_HEADING = "Tags"
TAG = ("Tag", "e.g. v1 or prod")
SET_TAG = "Set tag"
DELETE_TAG = "Delete tag"
CONFIRM_MOVE_TAG = "Tag {tag} is on {other}: move it to {version}?"
MOVE_TAG = "Move tag"
SETTING_TAG = "Tagging {version} as {tag}..."
TAG_SET = "Tag {tag} now names version {version}."
DELETING_TAG = "Deleting tag {tag}..."
TAG_DELETED = "Deleted tag {tag} (version {version} stays)."
NO_TAG = "Give a tag name first."
DRAFTS_HEADING = "Drafts: versions not committed (not listed above, not loadable)"
DRAFTS = "{count} draft(s) of {name} hold {size} in the bucket, counted in its usage until deleted."
DRAFT = "Draft"
DRAFT_OPTION = "{version} · {size} held · started {when}{how}"
DRAFT_INTERRUPTED = " · an interrupted save (the next save reuses its bytes)"
DELETE_DRAFT = "Delete draft"
CONFIRM_DELETE_DRAFT = (
    "Delete draft {named}? The {size} its folder holds in the bucket go; files other versions use are kept."
)
DELETING_DRAFT = "Deleting draft {named}..."
DELETED_DRAFT = "Deleted draft {named}."
DELETE_VERSION = "Delete version"
CONFIRM_DELETE_VERSION = "Delete version {named}? Files that other versions use are kept. This cannot be undone."
DELETING_VERSION = "Deleting version {version}..."
DELETED_VERSION = "Deleted version {named}."
SAVE_HEADING = "Save a folder as a new version (the dataset is created if new)"
SAVE_FIELDS = {
    "folder": ("Folder", "folder to save, e.g. ./data"),
    "name": ("Dataset", "existing or new dataset name"),
    "message": ("Message", "what changed"),
    "tag": ("Tag", "optional, e.g. v1"),
}
SAVE_PROVIDER = "Provider"
SAVE_PROVIDER_DEFAULT = "the dataset's own, or the team default"
TEAM_DEFAULT = "{name} (team default)"
SAVE = "Save folder as new version"
SAVING = "Saving {folder} as a new version of {name}..."
SAVED = "{headline}. {line}"
MOVE_TAG_AND_SAVE = "Move the tag and save"
CONFIRM_MOVE_TAG_ON_SAVE = "Tag {tag} names another version: move it to the version this save makes?"
LOAD_HEADING = "Load the version into a folder"
DEST = ("Into folder", "default: ./<dataset name>")
LOAD = "Load version into folder"
LOADING = "Loading {name}:{version}..."
LOADED = "{headline}. {line}"
OVERWRITE_AND_LOAD = "Overwrite them and load"
CONFIRM_OVERWRITE = (
    "{count} file(s) in the folder have local changes that this load would replace: {paths}. Overwrite them?"
)
MOUNT_HEADING = "Mount the version (a read-only folder, like Gradient's /datasets/<name>)"
MOUNT_DIR = ("At folder", "default: ./datasets/<dataset name>")
MOUNT = "Mount version"
MOUNTING = "Mounting {name}:{version}..."
CHANGES_HEADING = "What changed"
COMPARE = "Compared with"
COMPARE_PARENT = "the version before: {named}"
COMPARE_FIRST = "nothing (the first version)"
COMPARE_BEFORE = "the version before"
READING_CHANGES = "Comparing {named} with {other}..."
MOUNTS = "Mounted at"
NO_MOUNTS = "(not mounted)"
MOUNT_OPTION = "{named}   ·   at {folder}"
MOUNTED = "Mounted {named} read-only at {folder}: {files} files, {size}."
ALREADY_MOUNTED = "Already mounted: {named} at {folder}, as it was made."
UNMOUNT = "Unmount"
UNMOUNTING = "Unmounting {folder}..."
UNMOUNTED = "Unmounted {folder}."
UNMOUNTED_KEPT = "Unmounted {folder}; kept {count} file(s) the mount did not make: {paths}"
UNLISTED = (
    "Datasets in {name} are not listed, its bucket cannot be read: {error} "
    "Check setup on the Storage providers tab tells what is wrong."
)
CONFIRM = "Yes, {action}"
