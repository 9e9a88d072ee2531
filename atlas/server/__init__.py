"""`atlas serve`: the map's HTTP API, tiles and the web page."""
