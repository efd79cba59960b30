#!/usr/bin/env python3
"""optdefs.py: the command lines of vsock-shell and vsock-agent, read from
their option tables (host/main.c optdefs, agent.c aopts), for the tests
that hold the man pages and the bash completion to them.

    tests/optdefs.py [ROOT]

prints one line per option and mode:  MODE OPTION ARG [gone]
  MODE    exec cp serve ls wait release events keygen (vsock-shell), agent
  OPTION  -x or --long
  ARG     0 none, 1 required, 2 optional
  gone    the option is only there to say that it is gone
and one line per verb:  verb NAME; and per environment variable read:
env PROGRAM NAME.  Exits 1 when a table cannot be read (a changed layout
must fail the tests, not empty them)."""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")


def read(p):
    with open(os.path.join(root, p)) as f:
        return f.read()


def fail(why):
    print("optdefs.py: " + why, file=sys.stderr)
    sys.exit(1)


main = read("host/main.c")
vsh = read("host/vsh.h")
agent = read("agent.c")

# the mode bits, M_EXEC = 1 ... (host/vsh.h), and the macros built of them
bits = {m: int(v) for m, v in re.findall(r"\b(M_[A-Z]+)\s*=\s*(\d+)", vsh)}
if "M_EXEC" not in bits or "M_CP" not in bits:
    fail("no mode enum in host/vsh.h")
macros = dict(re.findall(r"#define\s+(M_[A-Z]+)\s+\(([^)]*)\)", main))


def mask(expr):
    v = 0
    for w in re.split(r"\s*\|\s*", expr.strip()):
        if w in bits:
            v |= bits[w]
        elif w in macros:
            v |= mask(macros[w])
        else:
            fail("unknown mode '%s'" % w)
    return v


table = re.search(r"optdefs\[\]\s*=\s*\{(.*?)\n\};", main, re.S)
if not table:
    fail("no optdefs table in host/main.c")
gone = set(re.findall(r"case (O_\w+):\s*usage_error\(o, \"[^\"]*is gone", main))
entry = re.compile(r"\{\s*(?:'(.)'|0)\s*,\s*(?:\"([^\"]+)\"|NULL)\s*,\s*(\d)\s*,\s*([A-Z_ |]+?)\s*,\s*(O_\w+)\s*\}")
n = 0
for s, l, arg, modes, oid in entry.findall(table.group(1)):
    n += 1
    m = mask(modes)
    for name, bit in sorted(bits.items(), key=lambda kv: kv[1]):
        if m & bit:
            for o in (["-" + s] if s else []) + (["--" + l] if l else []):
                print("%s %s %s%s" % (name[2:].lower(), o, arg, " gone" if oid in gone else ""))
if n < 10:
    fail("only %d entries in optdefs" % n)

verbs = re.search(r"modes\[\]\s*=\s*\{([^}]*)\}", main)
if not verbs:
    fail("no verb list in main()")
for m in re.findall(r"M_[A-Z]+", verbs.group(1)):
    print("verb " + m[2:].lower())

# the agent: aopts, and -h/--help, -V/--version handled before it
table = re.search(r"aopts\[\]\s*=\s*\{(.*?)\n\};", agent, re.S)
if not table:
    fail("no aopts table in agent.c")
n = 0
for l, s, arg in re.findall(r"\{\s*(?:\"(--[a-z-]+)\"|NULL)\s*,\s*(?:'(.)'|0)\s*,\s*(\d)\s*,\s*A_\w+\s*\}", table.group(1)):
    n += 1
    for o in (["-" + s] if s else []) + ([l] if l else []):
        print("agent %s %s" % (o, arg))
if n < 5:
    fail("only %d entries in aopts" % n)
for o in re.findall(r"!strcmp\(a, \"(-[-a-zA-Z]+)\"\)", agent):
    print("agent %s 0" % o)

# environment variables each program reads
# (the shared headers are both programs')
shared = [f for f in ("protocol.h", "chan.h", "transfer.h", "auth.h", "sha256.h") if os.path.exists(os.path.join(root, f))]
for prog, files in (("vsock-shell", ["host/" + f for f in sorted(os.listdir(os.path.join(root, "host")))
                                     if f.endswith((".c", ".h"))] + shared),
                    ("vsock-agent", ["agent.c"] + shared)):
    seen = set()
    for f in files:
        for v in re.findall(r"getenv\(\"([A-Z_]+)\"\)", read(f)):
            if v not in seen:
                seen.add(v)
                print("env %s %s" % (prog, v))
