"""Export: SavedModels in TF Serving's layout, and checks that they serve."""
