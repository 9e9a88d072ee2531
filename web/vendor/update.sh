#!/usr/bin/env bash
# Re-vendor Leaflet from the npm registry (the page loads nothing from a CDN).
set -euo pipefail
cd "$(dirname "$0")"
VERSION=1.9.4
tmp=$(mktemp -d)
(cd "$tmp" && npm pack --silent "leaflet@$VERSION" >/dev/null && tar xzf "leaflet-$VERSION.tgz")
rm -rf leaflet && mkdir leaflet
cp "$tmp/package/dist/leaflet.js" "$tmp/package/dist/leaflet.css" "$tmp/package/LICENSE" leaflet/
cp -r "$tmp/package/dist/images" leaflet/
echo "leaflet@$VERSION" > leaflet/VERSION
rm -rf "$tmp"
