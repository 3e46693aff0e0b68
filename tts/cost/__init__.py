"""Cost accounting: model shapes and the cost models that turn token counts into eFLOPs."""
