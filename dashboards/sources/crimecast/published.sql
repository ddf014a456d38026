select published_at from serving.published
