"""Partner records -> canonical records, by declarative specs (``mappings/specs/*.toml``).

Entry points live in ``mappings.engine``: ``map_record(spec_name, record)``, ``load_spec``,
``load_spec_file``, and the errors ``MappingError`` (a record) and ``SpecError`` (a spec).
Nothing is imported here, so loading one module does not load the engine and its schemas.
See docs/connectors.md, "Mappings".
"""
