"""Large indexes made fast: projects inserted as rows in a few multi-row statements (no uploads,
no files on disk; the simple pages read rows only). Used by test_scale.py and bench_scale.py."""

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa

from extrapypi.models import File, IndexState, Package, Release


def bulk_projects(engine, names: list[str], batch: int = 10_000) -> None:
    """Projects named ``names`` (already normalized), one release 1.0 and one wheel row each;
    the index serial moves once, as after any change."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        for start in range(0, len(names), batch):
            chunk = names[start : start + batch]
            connection.execute(
                sa.insert(Package),
                [dict(name=n, normalized_name=n, summary="", created=now) for n in chunk],
            )
            ids = dict(
                connection.execute(
                    sa.select(Package.normalized_name, Package.id).where(
                        Package.normalized_name.in_(chunk)
                    )
                ).all()
            )
            connection.execute(
                sa.insert(Release),
                [
                    dict(
                        package_id=ids[n],
                        version="1.0",
                        canonical_version="1",
                        sort_key="00000001",
                        requires_python="",
                        requires_dist=[],
                        provides_extra=[],
                        project_urls=[],
                        classifiers=[],
                        created=now,
                    )
                    for n in chunk
                ],
            )
            releases = dict(
                connection.execute(
                    sa.select(Release.package_id, Release.id).where(
                        Release.package_id.in_(list(ids.values()))
                    )
                ).all()
            )
            connection.execute(
                sa.insert(File),
                [
                    dict(
                        release_id=releases[ids[n]],
                        filename=f"{n.replace('-', '_')}-1.0-py3-none-any.whl",
                        filetype="bdist_wheel",
                        python_version="py3",
                        requires_python=">=3.8",
                        size=1000,
                        sha256=hashlib.sha256(n.encode()).hexdigest(),
                        md5="0" * 32,
                        blake2b_256="0" * 64,
                        metadata_sha256=hashlib.sha256(n.encode() + b"m").hexdigest(),
                        upload_time=now,
                    )
                    for n in chunk
                ],
            )
        connection.execute(sa.update(IndexState).values(serial=IndexState.serial + 1))
