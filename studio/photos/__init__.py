"""Photo-set ingestion: decode, detect, align (FFHQ-style), check, dedupe, report.

Modules (import what you need from them; ``import studio.photos`` stays cheap)::

    ingest   ingest_job(ctx, photos_dir, out_dir, size, options) -> IngestReport (a Job
             function), ingest_photos(...), IngestOptions
    report   IngestReport, FileResult, FaceResult, Reason
    dataset  remove_from_dataset(dataset_dir, names), load_dataset(dataset_dir)
    faces    FaceFinder;  align  align_face, ffhq_quad;  quality  sharpness, phash
    decode   load_photo
"""
