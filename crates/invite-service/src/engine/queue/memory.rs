//! The in-process queue of the standalone profile: three FIFO lists, taken highest priority first.

use std::{collections::VecDeque, sync::Mutex};

use async_trait::async_trait;
use domain::task::Priority;
use tokio::sync::Notify;

use super::{Delivery, Job, JobQueue, QueueError, PRIORITIES};

#[derive(Default)]
pub struct MemoryQueue {
    lists: Mutex<[VecDeque<Job>; 3]>,
    ready: Notify,
}

fn slot(p: Priority) -> usize {
    match p {
        Priority::High => 0,
        Priority::Normal => 1,
        Priority::Low => 2,
    }
}

struct Taken(Job);

#[async_trait]
impl Delivery for Taken {
    fn job(&self) -> &Job {
        &self.0
    }

    /// In one process a job lives as long as the process: nothing to confirm.
    async fn ack(self: Box<Self>) -> Result<(), QueueError> {
        Ok(())
    }
}

impl MemoryQueue {
    /// The next job without waiting (the simulator runs jobs itself).
    pub fn try_take(&self) -> Option<Job> {
        let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        lists.iter_mut().find_map(VecDeque::pop_front)
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn publish(&self, job: &Job, priority: Priority) -> Result<(), QueueError> {
        self.lists.lock().unwrap_or_else(|e| e.into_inner())[slot(priority)].push_back(job.clone());
        self.ready.notify_one();
        Ok(())
    }

    async fn next(&self) -> Result<Box<dyn Delivery>, QueueError> {
        loop {
            let notified = self.ready.notified();
            if let Some(job) = self.try_take() {
                return Ok(Box::new(Taken(job)));
            }
            notified.await;
        }
    }

    async fn depth(&self) -> Result<[(Priority, u64); 3], QueueError> {
        let lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        Ok(PRIORITIES.map(|p| (p, lists[slot(p)].len() as u64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn higher_priorities_are_taken_first_and_each_in_order() {
        let q = MemoryQueue::default();
        let job = |task_id| Job::ExecuteInviteTask { task_id };
        q.publish(&job(1), Priority::Low).await.unwrap();
        q.publish(&job(2), Priority::Normal).await.unwrap();
        q.publish(&job(3), Priority::High).await.unwrap();
        q.publish(&job(4), Priority::High).await.unwrap();
        let mut order = Vec::new();
        for _ in 0..4 {
            match q.next().await.unwrap().job() {
                Job::ExecuteInviteTask { task_id } => order.push(*task_id),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(order, vec![3, 4, 2, 1]);
        assert_eq!(q.depth().await.unwrap().map(|(_, n)| n), [0, 0, 0]);
    }

    #[tokio::test]
    async fn a_waiting_worker_wakes_when_a_job_arrives() {
        let q = std::sync::Arc::new(MemoryQueue::default());
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.next().await.unwrap().job().clone() }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        q.publish(&Job::CleanupCompletedTasks, Priority::Normal).await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(2), waiter)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, Job::CleanupCompletedTasks);
    }
}
