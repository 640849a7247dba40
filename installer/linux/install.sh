#!/bin/sh
# Install cspine from this unpacked folder: for the current user (default, no root needed) or
# for every user of the machine (--system, as root). Nothing is downloaded. Per-user data
# (studies, users, audit trail, settings) lives in the user's own data folder, never here.
#
#   ./install.sh                 app in ~/.local/opt/cspine, menu entry + icon for this user
#   sudo ./install.sh --system   app in /opt/cspine, menu entry + icon for every user
#   ./install.sh --prefix=DIR    app in DIR (menu entry for this user)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
MODE=user
PREFIX=""
for arg in "$@"; do
    case "$arg" in
        --system) MODE=system ;;
        --prefix=*) PREFIX=${arg#--prefix=} ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$MODE" = system ]; then
    [ "$(id -u)" = 0 ] || { echo "install.sh: --system needs root (sudo)" >&2; exit 2; }
    PREFIX=${PREFIX:-/opt/cspine}
    BIN_DIR=/usr/local/bin
    SHARE=/usr/share
else
    PREFIX=${PREFIX:-$HOME/.local/opt/cspine}
    BIN_DIR=$HOME/.local/bin
    SHARE=${XDG_DATA_HOME:-$HOME/.local/share}
fi

[ -x "$HERE/cspine" ] && [ -d "$HERE/_internal" ] || {
    echo "install.sh: run me from the unpacked cspine folder (cspine and _internal/ next to me)" >&2
    exit 2
}
case "$PREFIX" in /*) ;; *) PREFIX=$(pwd)/$PREFIX ;; esac
if [ "$(cd "$HERE" && pwd -P)" = "$( [ -d "$PREFIX" ] && cd "$PREFIX" && pwd -P)" ]; then
    echo "install.sh: this folder already is the installation ($PREFIX)" >&2
    exit 2
fi
if [ -e "$PREFIX" ]; then
    [ -f "$PREFIX/.cspine-install" ] || {
        echo "install.sh: $PREFIX exists and is not a cspine installation; not touching it" >&2
        exit 2
    }
    echo "Replacing the cspine installation in $PREFIX (your data is kept)"
    rm -rf "$PREFIX"
fi

mkdir -p "$(dirname "$PREFIX")"
TMP="$PREFIX.installing.$$"
cp -R "$HERE" "$TMP"
mv "$TMP" "$PREFIX"

DESKTOP="$SHARE/applications/cspine.desktop"
ICON_PNG="$SHARE/icons/hicolor/256x256/apps/cspine.png"
ICON_SVG="$SHARE/icons/hicolor/scalable/apps/cspine.svg"
LINK="$BIN_DIR/cspine"
mkdir -p "$(dirname "$DESKTOP")" "$(dirname "$ICON_PNG")" "$(dirname "$ICON_SVG")" "$BIN_DIR"
sed "s|@APPDIR@|$PREFIX|g" "$HERE/share/cspine.desktop" > "$DESKTOP"
cp "$HERE/share/cspine.png" "$ICON_PNG"
cp "$HERE/share/cspine.svg" "$ICON_SVG"
ln -sf "$PREFIX/cspine" "$LINK"

# what uninstall.sh removes (the app folder itself, plus these)
printf '%s\n' "$DESKTOP" "$ICON_PNG" "$ICON_SVG" "$LINK" > "$PREFIX/.cspine-install"

if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$SHARE/applications" 2>/dev/null || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t "$SHARE/icons/hicolor" 2>/dev/null || true
fi

echo "cspine installed in $PREFIX"
echo "  start it from the applications menu, or run: $LINK"
echo "  check it (offline, about a minute): $LINK --self-test"
echo "  uninstall: $PREFIX/uninstall.sh [--remove-data]"
