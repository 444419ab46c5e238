"""The model manager: identity (hashing), safety (pickle scans), probing, installs and records."""
