#!/usr/bin/env bash
# make stack: select (creating if needed) a stack of this checkout on the configured backend.
# A stack file from another machine carries that machine's `encryptionsalt:` (Pulumi writes it on
# `stack init`); with this machine's passphrase Pulumi then refuses to create the stack ("incorrect
# passphrase"). For a stack the backend does not have yet, whose file holds no secrets, the stale
# salt is dropped so Pulumi makes its own. A file with secrets keeps it: those need the passphrase
# that made them.
set -euo pipefail
stack=${1:?usage: select-stack.sh STACK}
file="Pulumi.$stack.yaml"
if pulumi stack select "$stack" --non-interactive >/dev/null 2>&1; then
  exit 0
fi
if [[ -f $file ]] && grep -q '^encryptionsalt:' "$file" && ! grep -q 'secure:' "$file"; then
  sed -i '/^encryptionsalt:/d' "$file"
  echo "select-stack: dropped $file's encryptionsalt (made with another passphrase; no secrets in it)" >&2
fi
pulumi stack select --create "$stack" --non-interactive >/dev/null
