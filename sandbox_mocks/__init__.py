"""sandbox_mocks"""
