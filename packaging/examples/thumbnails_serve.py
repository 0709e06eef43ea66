#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The image job as a stream-mode worker: one image path per input line, one
line out (the thumbnail's path; an empty line for an image that failed, its
traceback on stderr). The interpreter and Pillow load once per worker, not
once per image:

    find photos -name '*.jpg' > list.txt
    corral run --stream --keep-order --tasks list.txt -- python3 thumbnails_serve.py thumbs/
"""
import os
import sys

import corral
from PIL import Image

OUTDIR = sys.argv[1] if len(sys.argv) > 1 else "thumbs"


def thumbnail(src):
    dst = os.path.join(OUTDIR, os.path.splitext(os.path.basename(src))[0] + ".thumb.jpg")
    with Image.open(src) as im:
        im.thumbnail((256, 256))
        im.convert("RGB").save(dst, "JPEG", quality=85)
    return dst


os.makedirs(OUTDIR, exist_ok=True)
corral.serve(thumbnail)
