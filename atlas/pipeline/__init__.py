"""Pipeline stages: each module holds one pure function (arrays in, arrays out)."""
