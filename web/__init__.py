"""The web layer's pieces that are not routes: access control, metrics and the API description."""
