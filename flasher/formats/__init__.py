"""File formats both programs read (stdlib only): image header facts, partition table, boot_cfg, captures."""
