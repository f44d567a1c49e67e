"""Reading a committed version in place, without a copy in a folder of one's own, all through the content cache:

- cache.py: verified file bytes by SHA-256 in the data home, and where loads wrote such bytes (ContentCache)
- reader.py: verified reads of one file of a version, any byte range (FileReader, what gradient:// uses)
- mount.py: a read-only folder of a version, copied (reflinked) from the content cache
- automount.py: Gradient's .gradient/settings.yaml, the datasets mounted when the server starts
"""
