"""registry_core"""
