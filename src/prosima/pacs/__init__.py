"""The PACS connection: an Orthanc archive (started privately, or a site's own), a REST client that
treats every answer as hostile, a watcher that anchors every instance stored into it, and the
store-back of restorations as derived series."""
