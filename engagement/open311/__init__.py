"""Open311 GeoReport v2 server: discovery, services, definitions, requests and tokens."""
