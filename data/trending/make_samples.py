"""Re-create the sampled market files in this folder from the shared trending set (see README.md, "Samples").
Usage: python data/trending/make_samples.py /path/to/shared/data/trending
A sample keeps every row of the N videos whose crc32(video_id) is smallest (rows byte for byte, header too), so a
video's whole trending history comes along and the pick is the same on every machine."""
import csv, io, shutil, sys, zlib
from pathlib import Path

SAMPLES = {"2020_BR.csv": 130, "2020_CA.csv": 130, "2020_DE.csv": 130, "2020_FR.csv": 130, "2020_MX.csv": 130,
           "2017_FR.csv": 150, "2017_IN_reduced.csv": 200}


def records(text: str):
    "Each CSV record as (fields, its exact source text), records spanning lines included."
    lines = iter(text.splitlines(keepends=True))
    raw: list[str] = []
    def feed():
        for line in lines:
            raw.append(line)
            yield line
    for fields in csv.reader(feed()):
        yield fields, "".join(raw)
        raw.clear()


def sample(src: Path, n: int) -> str:
    text = src.read_text(encoding="utf-8")
    rows = list(records(text))
    header, body = rows[0], rows[1:]
    ids = sorted({f[0] for f, _ in body if f[0] != "#NAME?"}, key=lambda i: zlib.crc32(i.encode()))
    keep = set(ids[:n])
    return header[1] + "".join(r for f, r in body if f[0] in keep)


def main(shared: str):
    here = Path(__file__).resolve().parent
    for name, n in SAMPLES.items():
        out = here / name.replace(".csv", "_sample.csv")
        out.write_text(sample(Path(shared) / name, n), encoding="utf-8")
        cat = name.replace("_reduced", "").replace(".csv", "_category_id.json")
        if not (here / cat).exists(): shutil.copyfile(Path(shared) / cat, here / cat)
        print(out.name, out.stat().st_size)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data/trending")
