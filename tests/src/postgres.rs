//! A throwaway PostgreSQL cluster for the rotation tests (work in progress).
