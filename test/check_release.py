#!/usr/bin/env python3
"""test/check_release.py: the release metadata agrees with itself.

One version everywhere (samplellm.control, the Makefile, META.json,
debian/changelog), the install script of that version and an upgrade path
to it from every older install script, both in the Makefile's DATA;
META.json valid per the PGXN Meta Spec 1.0.0 (required keys, types, SemVer
versions, license names, tags, no unknown keys); LICENSE present.
Prints the failed checks (every check with -v) and a summary; exit status
1 when any fails.  Stdlib only.
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VERBOSE = "-v" in sys.argv[1:]
failures = 0
checks = 0


def check(ok, what):
    global failures, checks
    checks += 1
    if VERBOSE or not ok:
        print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures += 1
    return ok


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


# SemVer 1.0.0 as the spec requires (pre-release: "-" then alphanumerics).
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+)?$")
# The spec's license strings (Meta Spec 1.0.0, "license").
LICENSES = {"agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd",
            "freebsd", "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1",
            "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5",
            "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source",
            "restricted", "unrestricted", "unknown"}
TOP_KEYS = {"name", "abstract", "description", "version", "maintainer", "license",
            "provides", "meta-spec", "prereqs", "release_status", "resources", "tags",
            "no_index", "generated_by"}
EXT_KEYS = {"file", "version", "abstract", "docfile"}
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}


def version_ok(v):
    return isinstance(v, str) and SEMVER.match(v) is not None


def validate_meta(meta):
    """The PGXN Meta Spec 1.0.0 rules that a file can break."""
    for key in ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"):
        check(key in meta, f"META.json has the required key {key!r}")
    unknown = [k for k in meta if k not in TOP_KEYS and not re.match(r"^[xX]_.", k)]
    check(not unknown, f"META.json has no unknown keys {unknown or ''}")
    check(isinstance(meta.get("name"), str) and re.match(r"^[A-Za-z][A-Za-z0-9_-]+$", meta["name"]) is not None,
          "META.json name is a term")
    check(isinstance(meta.get("abstract"), str) and meta["abstract"] != "", "META.json abstract is a string")
    check(version_ok(meta.get("version")), "META.json version is a SemVer")
    m = meta.get("maintainer")
    check(isinstance(m, str) and m or isinstance(m, list) and m and all(isinstance(x, str) and x for x in m),
          "META.json maintainer is a string or a list of strings")
    lic = meta.get("license")
    if isinstance(lic, str):
        check(lic in LICENSES, f"META.json license {lic!r} is one the spec names")
    else:
        check(isinstance(lic, (list, dict)) and lic, "META.json license is a name, a list or a map")
    spec = meta.get("meta-spec", {})
    check(isinstance(spec, dict) and spec.get("version") == "1.0.0", "META.json meta-spec version is 1.0.0")
    provides = meta.get("provides", {})
    check(isinstance(provides, dict) and provides, "META.json provides at least one extension")
    for name, ext in (provides.items() if isinstance(provides, dict) else []):
        check(isinstance(ext, dict) and "file" in ext and "version" in ext,
              f"META.json provides.{name} has file and version")
        check(set(ext) <= EXT_KEYS | {k for k in ext if re.match(r"^[xX]_.", k)},
              f"META.json provides.{name} has no unknown keys")
        check(version_ok(ext.get("version")), f"META.json provides.{name}.version is a SemVer")
        for k in ("file", "docfile"):
            if k in ext:
                check(os.path.isfile(os.path.join(ROOT, ext[k])), f"META.json provides.{name}.{k} {ext[k]} exists")
    if "release_status" in meta:
        check(meta["release_status"] in ("stable", "testing", "unstable"), "META.json release_status is valid")
    if "tags" in meta:
        tags = meta["tags"]
        check(isinstance(tags, list) and tags and
              all(isinstance(t, str) and re.match(r"^[^/\\\x00-\x1f\x7f]{2,255}$", t) for t in tags),
              "META.json tags are 2-255 characters without / \\ or control characters")
    for phase, rels in meta.get("prereqs", {}).items():
        check(phase in PHASES, f"META.json prereqs phase {phase!r} is valid")
        for rel, reqs in rels.items():
            check(rel in RELATIONS, f"META.json prereqs.{phase}.{rel} is valid")
            for what, v in reqs.items():
                check(v == 0 or version_ok(v) or isinstance(v, str) and
                      all(re.match(r"^\s*(==|!=|>=|<=|>|<)?\s*\S+\s*$", p) for p in v.split(",")),
                      f"META.json prereqs.{phase}.{rel}.{what} is a version or a range")
    if "no_index" in meta:
        ni = meta["no_index"]
        check(isinstance(ni, dict) and set(ni) <= {"file", "directory"} and
              all(isinstance(v, list) and all(os.path.isdir(os.path.join(ROOT, d)) for d in v)
                  for k, v in ni.items() if k == "directory"),
              "META.json no_index lists existing folders")


def main():
    control = read("samplellm.control")
    m = re.search(r"^default_version\s*=\s*'([^']+)'", control, re.M)
    version = m.group(1) if m else None
    check(version is not None, f"samplellm.control default_version = {version}")
    makefile = read("Makefile")
    m = re.search(r"^EXTVERSION\s*=\s*(\S+)", makefile, re.M)
    check(m is not None and m.group(1) == version, f"Makefile EXTVERSION {m and m.group(1)} = {version}")
    try:
        meta = json.loads(read("META.json"))
    except (OSError, ValueError) as e:
        check(False, f"META.json parses ({e})")
        return
    check(meta.get("version") == version, f"META.json version {meta.get('version')} = {version}")
    ext = meta.get("provides", {}).get("samplellm", {})
    check(ext.get("version") == version, f"META.json provides.samplellm.version {ext.get('version')} = {version}")
    check(ext.get("file") == f"samplellm--{version}.sql", f"META.json provides.samplellm.file is samplellm--{version}.sql")
    m = re.match(r"^samplellm \(([^)-]+)-[^)]+\)", read("debian/changelog"))
    check(m is not None and m.group(1) == version,
          f"debian/changelog's latest upstream version {m and m.group(1)} = {version}")
    validate_meta(meta)

    m = re.search(r"^DATA\s*=\s*(.*)$", makefile, re.M)
    data = m.group(1).split() if m else []
    scripts = sorted(f for f in os.listdir(ROOT) if re.match(r"^samplellm--.*\.sql$", f))
    check(f"samplellm--{version}.sql" in scripts, f"samplellm--{version}.sql exists")
    check(sorted(data) == scripts, f"the Makefile's DATA lists every script ({' '.join(scripts)})")
    installs = [s[len("samplellm--"):-4] for s in scripts if s.count("--") == 1]
    edges = {}
    for s in scripts:
        if s.count("--") == 2:
            a, b = s[len("samplellm--"):-4].split("--")
            edges.setdefault(a, []).append(b)
    for v in installs:
        seen, todo = {v}, [v]
        while todo:
            for w in edges.get(todo.pop(), []):
                if w not in seen:
                    seen.add(w)
                    todo.append(w)
        check(version in seen, f"an upgrade path leads from {v} to {version}")
    lic = read("LICENSE") if os.path.isfile(os.path.join(ROOT, "LICENSE")) else ""
    check("PostgreSQL License" in lic and "The samplellm developers" in lic,
          "LICENSE holds the PostgreSQL License of The samplellm developers")


main()
print(f"check_release: {checks - failures} of {checks} checks passed")
sys.exit(1 if failures else 0)
