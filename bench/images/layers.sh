# The benchmark image's trees, shared by run.sh (pull) and save-load.sh:
# Debian bookworm minbase made by mmdebstrap (cached in $CACHE; sets
# $base to it), and the four other layers' trees written under DIR
# (small/, medium/, large/, app/): many small files, medium files, a few
# large ones (half compressible, half random) and a small app layer,
# about 200 MB in all.
images_make_layers() { # DIR
	mkdir -p "$CACHE"
	base=$CACHE/bookworm-minbase.tar
	if [[ ! -s $base ]]; then
		echo "bench/images: mmdebstrap --variant=minbase bookworm (cached in $CACHE)" >&2
		# Without docs, man pages and locales, as Debian's -slim images.
		mmdebstrap --quiet --variant=minbase --mode=root \
			--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
			--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
			bookworm "$base.tmp"
		mv "$base.tmp" "$base"
	fi
	echo "bench/images: generating the other layers" >&2
	python3 - "$1" <<'PY'
import os, random, sys, base64
root = sys.argv[1]
rng = random.Random(42)
def write(path, size, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    raw = rng.randbytes(size if not text else size * 3 // 4 + 3)
    data = base64.encodebytes(raw)[:size] if text else raw
    with open(path, "wb") as f:
        f.write(data)
# Layer 2: 3000 small files (1-16 KiB), like a language runtime's library tree.
for i in range(3000):
    write(f"{root}/small/usr/lib/app/mod{i // 100}/f{i}.py", rng.randint(1 << 10, 16 << 10), i % 2 == 0)
# Layer 3: 30 medium files (256 KiB - 2 MiB), like shared libraries.
for i in range(30):
    write(f"{root}/medium/usr/lib/app/lib{i}.so", rng.randint(256 << 10, 2 << 20), i % 2 == 0)
# Layer 4: a few large files, like a model or a database seed.
write(f"{root}/large/srv/data/seed.txt", 20 << 20, True)
write(f"{root}/large/srv/data/blob.bin", 10 << 20, False)
# Layer 5: the application, a handful of files.
for i in range(20):
    write(f"{root}/app/srv/app/conf{i}.json", rng.randint(200, 4000), True)
PY
}
