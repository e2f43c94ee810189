//! Reading whole topics once, from their beginning to their end as of now: what
//! `leadguard report --config FILE` counts. Read committed, like every downstream reader.

use super::{consumer_config, KafkaSettings};
use anyhow::{anyhow, bail, Context as _, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::time::Duration;

/// The longest wait for the next message or partition end before giving up.
const PATIENCE: Duration = Duration::from_secs(30);

/// Calls `each` with the value of every message of `topics` (topic by topic, partition order
/// within a topic as the broker delivers it), and returns how many there were. The consumer
/// joins no group and commits nothing.
pub fn read_to_end(
    settings: &KafkaSettings,
    topics: &[String],
    mut each: impl FnMut(&[u8]),
) -> Result<u64> {
    let mut config = consumer_config(settings, &format!("{}-report", settings.group_id), true);
    // Assigned by hand: the group id is never used to join or commit.
    config.set("partition.assignment.strategy", "range");
    let consumer: BaseConsumer = config
        .create()
        .context("cannot create a Kafka client (check `librdkafka:` settings)")?;
    let metadata = consumer
        .fetch_metadata(None, PATIENCE)
        .with_context(|| format!("cannot reach the Kafka brokers {}", settings.brokers))?;
    let mut count = 0;
    for topic in topics {
        let Some(t) = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
        else {
            bail!("topic {topic} doesn't exist on {}", settings.brokers);
        };
        let mut left: BTreeSet<i32> = t.partitions().iter().map(|p| p.id()).collect();
        let mut tpl = TopicPartitionList::new();
        for p in &left {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        // A partition ends when the consumer reports reaching its end (an empty one too).
        while !left.is_empty() {
            match consumer.poll(PATIENCE) {
                None => {
                    return Err(anyhow!(
                        "no answer from {topic} within {PATIENCE:?} (partitions {left:?} not read to their end)"
                    ))
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    left.remove(&p);
                }
                Some(Err(e)) => return Err(anyhow!("reading {topic}: {e}")),
                Some(Ok(m)) => {
                    if let Some(value) = m.payload() {
                        count += 1;
                        each(value);
                    }
                }
            }
        }
        consumer.unassign()?;
    }
    Ok(count)
}
