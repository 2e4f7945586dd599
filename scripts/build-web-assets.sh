#!/usr/bin/env bash
# Rebuild the web assets shipped inside sharewise from their npm packages (never fetched at run time):
# USWDS 3 (compiled CSS, JS, the fonts and images the CSS references), htmx 1, axe-core 4 (tests only),
# and the common-passwords list (zxcvbn-ts language-common, MIT) used by the NIST SP 800-63B check.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATIC="$ROOT/src/sharewise/web/static"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent \
  @uswds/uswds@3.14.0 htmx.org@1.9.12 axe-core@4 @zxcvbn-ts/language-common@3.0.4
U=node_modules/@uswds/uswds/dist
rm -rf "$STATIC" && mkdir -p "$STATIC/css" "$STATIC/js" "$STATIC/fonts" "$STATIC/img"
cp "$U/css/uswds.min.css" "$STATIC/css/"
cp "$U/js/uswds.min.js" "$U/js/uswds-init.min.js" "$STATIC/js/"
cp node_modules/htmx.org/dist/htmx.min.js "$STATIC/js/"
# Only the families the theme uses for text and headings (no monospace), woff2 only.
for family in source-sans-pro merriweather; do
  mkdir -p "$STATIC/fonts/$family"
  cp "$U/fonts/$family/"*.woff2 "$STATIC/fonts/$family/"
done
# Only the images the compiled CSS references (no hero photograph).
grep -o 'url(../img/[^)]*)' "$U/css/uswds.min.css" | sed 's|url(../img/||; s|)$||' | sort -u | grep -v hero.jpg |
  while read -r img; do mkdir -p "$STATIC/img/$(dirname "$img")"; cp "$U/img/$img" "$STATIC/img/$img"; done
for f in LICENSE.md; do cp "node_modules/@uswds/uswds/$f" "$STATIC/USWDS-LICENSE.md" 2>/dev/null || true; done
# axe-core drives the accessibility checks of the browser tests; it is not served.
mkdir -p "$ROOT/tests/web/assets"
cp node_modules/axe-core/axe.min.js "$ROOT/tests/web/assets/axe.min.js"
# Common passwords of 8 characters or more (shorter ones fail the length rule anyway), most common first.
node -e '
const m = require("@zxcvbn-ts/language-common/dist/passwords.json.js");
const list = Array.isArray(m) ? m : (m.default ?? m);
const words = (Array.isArray(list) ? list : String(list).split(",")).filter((w) => w.length >= 8);
process.stdout.write("# Common passwords (8+ characters), from @zxcvbn-ts/language-common 3.0.4 (MIT), most common first.\n" + words.join("\n") + "\n");
' > "$ROOT/src/sharewise/data/common-passwords.txt"
echo "assets written to $STATIC"
