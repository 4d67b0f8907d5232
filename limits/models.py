# No models. The module exists because Django sends post_migrate only for apps that
# have one, and this app creates the cache tables on post_migrate (apps.py).
