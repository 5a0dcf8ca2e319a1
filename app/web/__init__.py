"""What the protocols share: request bodies, paging, state responses, mounting, error pages, health."""
