"""Culvert jobs on Apache Spark: loads, index builds, checks, reads (the ``[spark]`` extra).

    from culvert_py import spark as cspark
    session = cspark.spark_session("local[2]")      # or the session spark-submit made
    url = "hbase://thrift-host:9090?thrift2_port=9091"
    report = cspark.write(df, url, "people", mode="bulk")
    report.rejects.show()                          # bad rows with their reasons
    cspark.build_index(session, url, "people", "by_city")
    cspark.verify_index(session, url, "people", "by_city")
    cspark.read(session, url, "people", "age > 30 AND city = 'Oslo'").count()

Every job's tasks open their client from the URL the driver ships (one per executor
process), and every task is idempotent, so Spark's retries and speculation are safe.
"""

from culvert_py.spark.index import build_index, repair_index, verify_index
from culvert_py.spark.read import read
from culvert_py.spark.rows import SPARK_TYPES
from culvert_py.spark.session import DEFAULT_MASTER, SparkMissing, require_pyspark, spark_session
from culvert_py.spark.write import MODES, TaskFigures, WriteReport, write

__all__ = [
    "DEFAULT_MASTER",
    "MODES",
    "SPARK_TYPES",
    "SparkMissing",
    "TaskFigures",
    "WriteReport",
    "build_index",
    "read",
    "repair_index",
    "require_pyspark",
    "spark_session",
    "verify_index",
    "write",
]
