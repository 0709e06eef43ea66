#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An I/O-bound job with corral.map: fetch every URL of a file (one per line)
and print its status and size. Workers mostly wait, so corral's pool grows
past the CPU count while throughput rises; max caps it, timeout gives up on
a URL after 30 s, retries tries it once more.

    urls_map.py urls.txt
"""
import sys
import urllib.request

import corral


def fetch(url):
    with urllib.request.urlopen(url, timeout=20) as r:
        return [r.status, len(r.read())]


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        urls = [line.strip() for line in f if line.strip()]
    results = corral.imap(fetch, urls, max=64, timeout=30, retries=1)
    try:
        for url, (status, size) in zip(urls, results):
            print(status, size, url)
    except corral.TaskError as e:
        sys.exit(str(e))
