#!/bin/sh
# Remove this cspine installation (the folder this script is in, its menu entry, icon and
# command link). Your data (studies, users, audit trail, settings) is KEPT unless you add
# --remove-data, which also deletes the current user's cspine data, cache and logs.
#
#   ~/.local/opt/cspine/uninstall.sh [--remove-data] [--yes]
#   sudo /opt/cspine/uninstall.sh        (a --system installation; data of each user is kept)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REMOVE_DATA=no
YES=no
for arg in "$@"; do
    case "$arg" in
        --remove-data) REMOVE_DATA=yes ;;
        --yes|-y) YES=yes ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "uninstall.sh: unknown option $arg (see --help)" >&2; exit 2 ;;
    esac
done

[ -f "$HERE/.cspine-install" ] || {
    echo "uninstall.sh: $HERE is not an installed copy of cspine (no .cspine-install);" \
         "an unpacked folder is removed by deleting it" >&2
    exit 2
}

case "$HERE" in
    /|/usr|/usr/*|/bin|/etc|"$HOME") echo "uninstall.sh: refusing to delete $HERE" >&2; exit 2 ;;
esac

# the per-user folders platformdirs gives cspine on Linux
DATA_DIR=${XDG_DATA_HOME:-$HOME/.local/share}/cspine
CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/cspine
STATE_DIR=${XDG_STATE_HOME:-$HOME/.local/state}/cspine

if [ "$YES" = no ] && [ -t 0 ]; then
    printf 'Remove cspine from %s%s? [y/N] ' "$HERE" \
        "$( [ "$REMOVE_DATA" = yes ] && echo " AND delete your data in $DATA_DIR")"
    read -r answer
    case "$answer" in y|Y|yes|YES) ;; *) echo "Nothing removed."; exit 1 ;; esac
fi

while IFS= read -r path; do
    if [ -n "$path" ]; then rm -f "$path"; fi
done < "$HERE/.cspine-install"
rm -rf "$HERE"
echo "cspine removed from $HERE"

if [ "$REMOVE_DATA" = yes ]; then
    rm -rf "$DATA_DIR" "$CACHE_DIR" "$STATE_DIR"
    echo "cspine data removed: $DATA_DIR, $CACHE_DIR, $STATE_DIR"
    if [ -n "${CSPINE_DATA_DIR:-}" ]; then
        echo "CSPINE_DATA_DIR points to $CSPINE_DATA_DIR: that folder was not touched."
    fi
else
    echo "Your cspine data is kept in $DATA_DIR (delete that folder to remove it," \
         "or run this script with --remove-data)."
fi
