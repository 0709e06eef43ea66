#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The image job with corral.map: a thumbnail of every image given, made by
corral's workers, the way multiprocessing.Pool.map would (needs Pillow,
python3-pil). corral sizes the pool; a terminal shows corral's progress.

    thumbnails_map.py OUTDIR IMAGE...
"""
import os
import sys

import corral


def thumbnail(job):
    """One image: its thumbnail's path. Runs in a worker, which imports this
    script as a module: the part under __main__ below does not run there."""
    from PIL import Image
    src, outdir = job
    dst = os.path.join(outdir, os.path.splitext(os.path.basename(src))[0] + ".thumb.jpg")
    with Image.open(src) as im:
        im.thumbnail((256, 256))
        im.convert("RGB").save(dst, "JPEG", quality=85)
    return dst


if __name__ == "__main__":
    outdir, images = sys.argv[1], sys.argv[2:]
    os.makedirs(outdir, exist_ok=True)
    try:
        for path in corral.imap(thumbnail, [(src, outdir) for src in images]):
            print(path)
    except corral.TaskError as e:
        sys.exit(f"{e}\n{e.remote_traceback}")
