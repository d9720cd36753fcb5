"""The words of a CSV file of records, below the entities that use them and the importer that reads the files:
a column and how a cell becomes a value (columns), what one importable entity is (entity), and the checks that
span rows (hooks). Each entity module holds its own columns with these; zoho_sync.importing reads files."""
