"""The downloader service."""
