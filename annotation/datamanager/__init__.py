"""datamanager"""
