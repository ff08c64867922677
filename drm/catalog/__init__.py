"""What is for sale: series and episodes (records, stores and the Catalog over both), keyset page cursors,
a viewer's library and positions, and creator eligibility. Imports storage/, drm.ids, drm.errors and
access/'s change feed (an episode's change is an access change).
"""
