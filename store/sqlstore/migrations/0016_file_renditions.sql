-- What the server read from a file's content (a photo's size, a DICOM
-- image's study), sealed under the patient's data key like the file's
-- name; NULL when there is nothing to say (a PDF).
ALTER TABLE files ADD COLUMN details_sealed {{blob}};

-- Renditions the server derived from a file (a thumbnail, a DICOM image's
-- first frame as PNG, a de-identified DICOM copy), each sealed in the blob
-- store under the patient's data key like the file itself. Deleted with
-- their file.
CREATE TABLE file_renditions (
    file_id      TEXT NOT NULL REFERENCES files(id),
    kind         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    blob_key     TEXT NOT NULL,
    created_at   {{timestamp}} NOT NULL,
    PRIMARY KEY (file_id, kind)
);
