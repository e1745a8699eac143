"""Catalog: categories, products, SKUs and stock. Imports core and identity."""
