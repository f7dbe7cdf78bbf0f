"""HTTP plumbing shared by every controller: bodies, errors, guards, OpenAPI, envelopes, paging."""
