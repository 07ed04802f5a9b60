"""The admin API (`/api/v1`) and the operator console (`/console`), behind scoped keys."""
